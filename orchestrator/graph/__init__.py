"""The LangGraph graph: state, nodes, and the builder."""
