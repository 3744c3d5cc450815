"""Import time of tfinverse against tensorflow itself.

Each statement runs in a fresh interpreter ``--repeat`` times; the table gives the median and
the minimum wall time in seconds.

    python benchmarks/bench_import.py --repeat 5
"""

import argparse
import statistics
import subprocess
import sys
import time

STATEMENTS = {
    "python (nothing)": "pass",
    "import tensorflow": "import tensorflow",
    "import tfinverse": "import tfinverse",
    "import tfinverse.operators": "import tfinverse.operators",
    "import tfinverse.operators, .metrics, .data": "import tfinverse.operators, tfinverse.metrics, tfinverse.data",
}


def time_statement(statement: str, repeat: int) -> list:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="fresh interpreters per statement")
    args = parser.parse_args()
    print("| statement | median s | min s |")
    print("| --- | --- | --- |")
    for label, statement in STATEMENTS.items():
        times = time_statement(statement, args.repeat)
        print(f"| `{label}` | {statistics.median(times):.2f} | {min(times):.2f} |", flush=True)


if __name__ == "__main__":
    main()
