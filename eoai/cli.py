"""The ``eoai`` command line: ``eoai report`` and ``eoai demo``.

Examples
--------
$ eoai demo                                   # ./eoai-demo/report.html
$ eoai report notebooks/03_phenology.ipynb -p quick False -p bbox "[14.9, 45.9, 15.0, 46.0]" --out out
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eoai",
        description="eoai: satellite image time series to land information, as notebook reports.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser(
        "report",
        help="run a notebook with papermill and write the executed notebook + an offline HTML report",
    )
    rep.add_argument("notebook", help="notebook with a cell tagged 'parameters'")
    rep.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a parameter (Python literal or string), repeatable",
    )
    rep.add_argument("--out", default="eoai-report", help="output folder (default ./eoai-report)")
    rep.add_argument("--show-code", action="store_true", help="keep the code in the HTML report")
    rep.add_argument(
        "--cwd", default=None, help="kernel working directory (default: the notebook's)"
    )
    rep.add_argument("--kernel", default=None, help="Jupyter kernel name (default: the notebook's)")
    rep.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds")

    demo = sub.add_parser("demo", help="the flagship report on the embedded sample")
    demo.add_argument("--out", default="eoai-demo", help="output folder (default ./eoai-demo)")
    demo.add_argument("--full", action="store_true", help="run with quick=False")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``eoai`` command; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when the notebook failed or the input was wrong (the message names the
        failing cell and where the partial notebook is).

    Examples
    --------
    >>> main(["demo", "--out", "eoai-demo"])  # doctest: +SKIP
    report written to /.../eoai-demo/report.html
    0
    """
    args = _parser().parse_args(argv)
    from .errors import EoaiError

    try:
        if args.command == "demo":
            from .reports.demo import demo

            result = demo(args.out, quick=not args.full)
        else:
            from .reports.run import parse_value, run_report

            params = {name: parse_value(value) for name, value in args.parameter}
            result = run_report(
                args.notebook,
                params,
                out=args.out,
                hide_code=not args.show_code,
                cwd=args.cwd,
                kernel_name=args.kernel,
                timeout=args.timeout,
            )
    except EoaiError as err:
        print(f"eoai {args.command}: error: {err}", file=sys.stderr)
        return 1
    print(f"report written to {result.html}")
    print(f"executed notebook: {result.notebook}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
