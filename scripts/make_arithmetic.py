"""Generate datasets/arithmetic.jsonl and datasets/smoke.jsonl: arithmetic word problems with
exact integer answers.

Every problem comes from a template that draws its numbers from a seeded `random.Random`, writes
the text from those numbers and computes the answer from the same numbers, so no answer is
worked out by hand. Numbers are drawn so that every intermediate result is a whole number
(percentages of multiples of 100, speeds that divide evenly into minutes, and so on); a template
that cannot promise that by construction checks it and draws again.

    python scripts/make_arithmetic.py            # (re)write both files
    python scripts/make_arithmetic.py --check    # exit 1 unless the files match a regeneration

Running it again reproduces both files byte for byte (it uses only `randint`, `choice`, `sample`
and `shuffle` of `random.Random`, whose sequences Python keeps stable for integer seeds).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[1] / "datasets"
ARITHMETIC_SEED = 20240601
SMOKE_SEED = 7

NAMES = [
    "Maya", "Tom", "Ana", "Ben", "Lena", "Omar", "Priya", "Sam",
    "Keiko", "Luis", "Zara", "Ivan", "Nia", "Eli", "Rosa", "Theo",
]  # fmt: skip
THINGS = ["marbles", "stamps", "shells", "stickers", "cards", "coins"]


@dataclass(frozen=True)
class Problem:
    text: str
    answer: int
    steps: int


Template = Callable[[random.Random], Problem]


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def percent_of(amount: int, pct: int) -> int:
    """`pct`% of `amount`, which the caller has made whole."""
    assert amount * pct % 100 == 0, (amount, pct)
    return amount * pct // 100


TIMES = {2: "twice", 3: "three times", 4: "four times"}


def a_or_an(number: int) -> str:
    """The article for a number read aloud: "an 18-minute break", "a 12-minute break"."""
    return "an" if str(number).startswith("8") or number in (11, 18) else "a"


def hours_minutes(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    hours = f"{h} hour" + ("s" if h != 1 else "")
    return hours if m == 0 else f"{hours} {m} minutes"


# --- one step ---------------------------------------------------------------------------------


def add(rng: random.Random, lo: int = 12, hi: int = 89) -> Problem:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    a, b = rng.randint(lo, hi), rng.randint(lo, hi)
    text = f"{name} has {a} {thing} and finds {b} more. How many {thing} does {name} have now?"
    return Problem(text, a + b, 1)


def subtract(rng: random.Random, lo: int = 40, hi: int = 150) -> Problem:
    total = rng.randint(lo, hi)
    taken = rng.randint(max(1, lo // 4), total - 2)
    text = (
        f"A library shelf holds {total} books. Readers borrow {taken} of them. "
        "How many books are still on the shelf?"
    )
    return Problem(text, total - taken, 1)


def multiply(rng: random.Random, hi: int = 12) -> Problem:
    thing = rng.choice(["crayons", "apples", "eggs", "candles", "tiles"])
    per, groups = rng.randint(3, hi), rng.randint(3, hi + 3)
    text = f"A box holds {per} {thing}. How many {thing} are in {groups} boxes?"
    return Problem(text, per * groups, 1)


def divide(rng: random.Random, hi: int = 12) -> Problem:
    thing = rng.choice(["stickers", "cookies", "pencils", "grapes"])
    each, kids = rng.randint(3, hi), rng.randint(2, hi)
    text = (
        f"{each * kids} {thing} are shared equally among {kids} children. "
        f"How many {thing} does each child get?"
    )
    return Problem(text, each, 1)


# --- two steps --------------------------------------------------------------------------------


def change(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    count, price = rng.randint(2, 6), rng.randint(2, 15)
    bill = next(b for b in (20, 50, 100) if b > count * price)
    text = (
        f"{name} buys {count} notebooks at ${price} each and pays with a ${bill} bill. "
        f"How many dollars of change does {name} get?"
    )
    return Problem(text, bill - count * price, 2)


def beads(rng: random.Random, hi: int = 9) -> Problem:
    bags, red, blue = rng.randint(3, hi), rng.randint(2, hi), rng.randint(2, hi)
    text = (
        f"Each of {bags} bags holds {red} red beads and {blue} blue beads. "
        "How many beads are there in all?"
    )
    return Problem(text, bags * (red + blue), 2)


def muffins(rng: random.Random) -> Problem:
    per, trays = rng.randint(6, 24), rng.randint(2, 8)
    sold = rng.randint(per, per * trays - 1)
    text = (
        f"A baker bakes {trays} trays of {per} muffins each and sells {sold} of them. "
        "How many muffins are left?"
    )
    return Problem(text, per * trays - sold, 2)


def clock(rng: random.Random) -> Problem:
    start, later = rng.randint(1, 12), rng.randint(13, 100)
    text = (
        f"A 12-hour clock shows {start} o'clock. Which hour (from 1 to 12) will it show "
        f"{later} hours later?"
    )
    return Problem(text, (start - 1 + later) % 12 + 1, 2)


# --- three steps ------------------------------------------------------------------------------


def ages(rng: random.Random) -> Problem:
    a, b, c = rng.sample(NAMES, 3)
    youngest, factor = rng.randint(3, 12), rng.choice([2, 3])
    gap, years = rng.randint(2, 9), rng.randint(2, 10)
    text = (
        f"{a} is {gap} years older than {b}. {b} is {TIMES[factor]} as old as {c}, who is "
        f"{youngest}. How old will {a} be in {years} years?"
    )
    return Problem(text, youngest * factor + gap + years, 3)


def fence(rng: random.Random) -> Problem:
    width, cost = rng.randint(3, 30), rng.randint(3, 15)
    length = width + rng.randint(1, 15)
    text = (
        f"A rectangular garden is {length} m long and {width} m wide. Fencing costs ${cost} per "
        "meter. How many dollars does it cost to fence all four sides of the garden?"
    )
    return Problem(text, 2 * (length + width) * cost, 3)


def cartons(rng: random.Random) -> Problem:
    while True:
        per_day, days, price = rng.randint(8, 30), rng.randint(3, 14), rng.randint(2, 6)
        if per_day * days % 12:  # some eggs are left over, so rounding down matters
            break
    text = (
        f"A farm collects {per_day} eggs a day for {days} days and packs them into cartons of "
        f"12. Each full carton sells for ${price}; eggs that do not fill a carton are not sold. "
        "How many dollars does the farm get?"
    )
    return Problem(text, per_day * days // 12 * price, 3)


def pencils(rng: random.Random) -> Problem:
    boxes, per_box = rng.randint(3, 8), rng.randint(24, 60)
    students = rng.randint(15, 30)
    each = rng.randint(2, max(2, boxes * per_box // students - 1))
    text = (
        f"A teacher has {boxes} boxes of {per_box} pencils. She gives {each} pencils to each of "
        f"her {students} students. How many pencils are left?"
    )
    return Problem(text, boxes * per_box - each * students, 3)


def bus_riders(rng: random.Random) -> Problem:
    ride_pct, line_pct = rng.choice([20, 25, 40, 60, 75]), rng.choice([20, 25, 50, 75])
    total = 400 * rng.randint(1, 6)  # 400 * p% * q% is whole for these percentages
    riders = percent_of(total, ride_pct)
    text = (
        f"A school has {total} students. {ride_pct}% of them take the bus, and {line_pct}% of "
        "the bus riders ride line A. How many students take the bus but do not ride line A?"
    )
    return Problem(text, riders - percent_of(riders, line_pct), 3)


def _mother_now(rng: random.Random) -> tuple[str, int, int, int, int]:
    name = rng.choice(NAMES)
    while True:
        child, years, factor = rng.randint(4, 15), rng.randint(2, 10), rng.randint(2, 4)
        mother = factor * (child + years) - years
        if 20 <= mother - child <= 40:
            return name, child, years, factor, mother


def mother(rng: random.Random) -> Problem:
    name, child, years, factor, mother_age = _mother_now(rng)
    text = (
        f"In {years} years, {name}'s mother will be {TIMES[factor]} as old as {name} will be "
        f"then. {name} is {child} years old now. How old is {name}'s mother now?"
    )
    return Problem(text, mother_age, 3)


def boxes_of_toys(rng: random.Random) -> Problem:
    while True:
        rate, hours, days = rng.randint(12, 40), rng.randint(6, 10), rng.randint(2, 6)
        per_box = rng.choice([8, 12, 16, 25])
        if rate * hours * days % per_box:
            break
    text = (
        f"A factory makes {rate} toys an hour and runs {hours} hours a day. After {days} days "
        f"the toys are packed {per_box} to a box. How many toys are left over that do not fill "
        "a box?"
    )
    return Problem(text, rate * hours * days % per_box, 3)


# --- four to six steps ------------------------------------------------------------------------


def discount(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    price, pct = 20 * rng.randint(2, 10), rng.choice([10, 15, 20, 25, 30, 40])
    sale = price - percent_of(price, pct)
    qty = rng.randint(2, 5)
    bill = 100 * ceil_div(sale * qty + 1, 100)
    text = (
        f"A jacket normally costs ${price}. During a sale everything is {pct}% off. {name} buys "
        f"{qty} jackets and pays with ${bill}. How many dollars of change does {name} get?"
    )
    return Problem(text, bill - sale * qty, 4)


def tank(rng: random.Random) -> Problem:
    a, b = rng.randint(5, 20), rng.randint(5, 20)
    leak, minutes, start = rng.randint(2, 5), rng.randint(5, 40), 10 * rng.randint(5, 50)
    capacity = start + (a + b - leak) * minutes
    text = (
        f"A tank holds {capacity} liters and already contains {start} liters. Pump A adds {a} "
        f"liters per minute and pump B adds {b} liters per minute, while a leak drains {leak} "
        "liters per minute. With both pumps running, how many minutes until the tank is full?"
    )
    return Problem(text, minutes, 4)


def train(rng: random.Random) -> Problem:
    v1, v2 = 4 * rng.randint(10, 30), 4 * rng.randint(10, 30)  # multiples of 4 km/h
    t1 = 60 * rng.randint(1, 3) + rng.choice([15, 30, 45])
    t2 = rng.choice([15, 30, 45, 75, 90, 105])
    text = (
        f"A train travels at {v1} km/h for {hours_minutes(t1)}, then at {v2} km/h for {t2} "
        "minutes. How many kilometers does it travel in total?"
    )
    assert v1 * t1 % 60 == 0 and v2 * t2 % 60 == 0
    return Problem(text, v1 * t1 // 60 + v2 * t2 // 60, 4)


def festival(rng: random.Random) -> Problem:
    films, length, pause = rng.randint(3, 6), 60 + 5 * rng.randint(1, 11), rng.randint(10, 20)
    text = (
        f"A film festival shows {films} films one after another, each {hours_minutes(length)} "
        f"long, with {a_or_an(pause)} {pause}-minute break between consecutive films. How many "
        "minutes pass from the start of the first film to the end of the last?"
    )
    return Problem(text, films * length + (films - 1) * pause, 5)


def buses(rng: random.Random) -> Problem:
    seats = rng.choice([30, 40, 45, 50])
    while True:
        classes = [rng.randint(22, 32) for _ in range(3)]
        teachers = rng.randint(3, 8)
        people = sum(classes) + teachers
        if people % seats:
            break
    text = (
        f"Three classes with {classes[0]}, {classes[1]} and {classes[2]} students go on a trip "
        f"with {teachers} teachers. Each bus seats {seats} people. How many buses are needed?"
    )
    return Problem(text, ceil_div(people, seats), 4)


def overtime(rng: random.Random) -> Problem:
    name, rate, hours = rng.choice(NAMES), 2 * rng.randint(6, 15), rng.randint(42, 55)
    text = (
        f"{name} earns ${rate} per hour for the first 40 hours of a week and 1.5 times that "
        f"rate for every hour beyond 40. Last week {name} worked {hours} hours. How many "
        f"dollars did {name} earn?"
    )
    return Problem(text, 40 * rate + (hours - 40) * (rate * 3 // 2), 5)


def savings(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    price, pct = 20 * rng.randint(10, 30), rng.choice([10, 15, 20, 25])
    sale = price - percent_of(price, pct)
    saved, weekly = 5 * rng.randint(4, 20), 5 * rng.randint(3, 8)
    text = (
        f"A bike costs ${price}, but it is on sale for {pct}% off. {name} has already saved "
        f"${saved} and saves ${weekly} more each week. How many weeks must {name} save before "
        "having enough to buy the bike at the sale price?"
    )
    return Problem(text, ceil_div(sale - saved, weekly), 4)


def recipe(rng: random.Random) -> Problem:
    name, serves = rng.choice(NAMES), rng.choice([2, 4, 6])
    per_person, guests = 10 * rng.randint(5, 15), rng.randint(7, 30)
    bag = rng.choice([250, 500, 1000])
    grams = per_person * serves
    text = (
        f"A recipe for {serves} people uses {grams} grams of flour. {name} wants to cook it for "
        f"{guests} people. Flour is sold in {bag}-gram bags. How many bags must {name} buy?"
    )
    return Problem(text, ceil_div(per_person * guests, bag), 4)


def mother_sum(rng: random.Random) -> Problem:
    name, child, years, factor, mother_age = _mother_now(rng)
    later = rng.randint(3, 12)
    text = (
        f"In {years} years, {name}'s mother will be {TIMES[factor]} as old as {name} will be "
        f"then. {name} is {child} years old now. What will the sum of their ages be {later} "
        "years from now?"
    )
    return Problem(text, mother_age + child + 2 * later, 5)


def shopping(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    while True:
        notebooks, pens = rng.randint(2, 6), rng.randint(3, 10)
        n_price, p_price, pct = rng.randint(3, 9), rng.randint(1, 4), rng.choice([10, 20, 25])
        total = notebooks * n_price + pens * p_price
        if total * pct % 100 == 0:
            break
    paid = total - percent_of(total, pct)
    bill = next(b for b in (20, 50, 100) if b > paid)
    text = (
        f"{name} buys {notebooks} notebooks at ${n_price} each and {pens} pens at ${p_price} "
        f"each. The store takes {pct}% off the whole bill. {name} pays with a ${bill} bill. "
        f"How many dollars of change does {name} get?"
    )
    return Problem(text, bill - paid, 6)


def running(rng: random.Random) -> Problem:
    name, days = rng.choice(NAMES), rng.randint(3, 7)
    daily, last = rng.randint(2000, 6999), rng.randint(1000, 9999)
    km, m = divmod(daily, 1000)
    last_km, last_m = divmod(last, 1000)
    text = (
        f"{name} runs {km} km {m} m every day for {days} days, and then {last_km} km {last_m} m "
        f"on the next day. How many meters does {name} run in total?"
    )
    return Problem(text, daily * days + last, 4)


PAIRS = [(3, 6), (4, 12), (6, 12), (10, 15), (12, 24), (20, 30), (5, 20), (8, 24), (2, 3), (4, 6)]


def painters(rng: random.Random) -> Problem:
    a, b = rng.sample(NAMES, 2)
    slow, fast = rng.choice(PAIRS)
    if rng.randint(0, 1):
        slow, fast = fast, slow
    minutes = slow * fast * 60 // (slow + fast)
    assert slow * fast * 60 % (slow + fast) == 0
    text = (
        f"{a} can paint a fence alone in {slow} hours; {b} can paint the same fence alone in "
        f"{fast} hours. Working together at those rates, how many minutes do they take to "
        "paint the fence?"
    )
    return Problem(text, minutes, 4)


# --- the two sets -----------------------------------------------------------------------------

ARITHMETIC_PLAN: list[tuple[Template, int]] = [
    (add, 6), (subtract, 6), (multiply, 6), (divide, 6),
    (change, 5), (beads, 5), (muffins, 5), (clock, 5),
    (ages, 5), (fence, 5), (cartons, 5), (pencils, 5), (bus_riders, 4), (mother, 3),
    (boxes_of_toys, 4),
    (discount, 5), (tank, 5), (train, 5), (festival, 4), (buses, 5), (overtime, 5),
    (savings, 5), (recipe, 4), (mother_sum, 3), (shopping, 5), (running, 4), (painters, 5),
]  # fmt: skip


def small_add(rng: random.Random) -> Problem:
    return add(rng, 2, 9)


def small_subtract(rng: random.Random) -> Problem:
    return subtract(rng, 8, 20)


def small_multiply(rng: random.Random) -> Problem:
    return multiply(rng, 5)


def small_beads(rng: random.Random) -> Problem:
    return beads(rng, 4)


SMOKE_PLAN: list[tuple[Template, int]] = [
    (small_add, 3), (small_subtract, 3), (small_multiply, 2), (small_beads, 2),
]  # fmt: skip


def build(plan: list[tuple[Template, int]], seed: int, prefix: str) -> list[dict[str, object]]:
    """Draw every planned problem (no two texts alike), shuffle them, and number them."""
    rng = random.Random(seed)
    problems: list[Problem] = []
    seen: set[str] = set()
    for template, count in plan:
        drawn = 0
        while drawn < count:
            problem = template(rng)
            if problem.text in seen:
                continue
            assert isinstance(problem.answer, int) and problem.answer > 0, problem
            seen.add(problem.text)
            problems.append(problem)
            drawn += 1
    rng.shuffle(problems)
    return [
        {
            "id": f"{prefix}-{i:03d}",
            "input": p.text,
            "target": str(p.answer),
            "scorer": "numeric",
            "steps": p.steps,
        }
        for i, p in enumerate(problems, 1)
    ]


def render(rows: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode("ascii")


def outputs(directory: Path) -> dict[Path, bytes]:
    return {
        directory / "arithmetic.jsonl": render(build(ARITHMETIC_PLAN, ARITHMETIC_SEED, "arith")),
        directory / "smoke.jsonl": render(build(SMOKE_PLAN, SMOKE_SEED, "smoke")),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify, do not write")
    parser.add_argument("--dir", type=Path, default=DATASETS, help="where the files live")
    args = parser.parse_args(argv)
    stale = []
    for path, content in outputs(args.dir).items():
        if args.check:
            if not path.is_file() or path.read_bytes() != content:
                stale.append(path.name)
        else:
            path.write_bytes(content)
            rows = content.count(b"\n")
            print(f"wrote {path} ({rows} rows)")
    if stale:
        print(f"out of date: {', '.join(stale)}; run scripts/make_arithmetic.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
