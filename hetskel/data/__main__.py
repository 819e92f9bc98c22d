"""python -m hetskel.data: convert raw NTU files, inspect PYSKL pickles, write the synthetic set.

    python -m hetskel.data convert-ntu nturgb+d_skeletons/ ntu60_3d.pkl --dataset ntu60
    python -m hetskel.data info ntu60_hrnet.pkl
    python -m hetskel.data synth out/ --num 200 --seed 0

Exit codes: 0 success; 1 convert-ntu finished but some files were bad (or nothing was converted);
2 a user error (bad file, missing path, bad arguments, an output that is a folder or under a file,
permission, disk full, a closed output pipe), printed as one short ``error: ...`` line with no
traceback. Nothing is replaced unless asked: an existing output is refused without ``--overwrite``,
and an output that is one of the inputs is always refused.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hetskel.data.errors import DataError
from hetskel.layouts import LayoutError

USER_ERRORS = (DataError, FileNotFoundError, LayoutError)


def _convert_ntu(args) -> int:
    from hetskel.data.ntu_convert import convert_ntu

    report = convert_ntu(args.src_dir, args.out, max_persons=args.max_persons, dataset=args.dataset,
                         workers=args.workers, progress=not args.no_progress, fields=args.fields,
                         missing_list=args.missing_list, overwrite=args.overwrite)
    print(report.format(max_lines=args.max_report_lines))
    if report.bad:
        print(f"error: {len(report.bad)} bad file(s) were not converted (listed above)", file=sys.stderr)
    return 0 if report.ok else 1


def _info(args) -> int:
    from hetskel.data.pyskl import format_summary, load_pyskl, summarize

    try:
        data = load_pyskl(args.file)
    except USER_ERRORS:
        raise
    except Exception as e:  # noqa: BLE001 - pyskl wraps corrupt pickles already; last line of defence
        raise DataError(f"cannot read ({type(e).__name__}: {e})", file=args.file) from None
    print(format_summary(summarize(data)))
    return 0


def _synth(args) -> int:
    # imported here, not at the top: only this subcommand needs the generator
    from hetskel.data.ntu_convert import check_output_file
    from hetskel.data.synhet import save_synhet

    out_dir = args.out_dir
    if not str(out_dir).strip():
        raise DataError("the output folder is empty; give a folder name such as data/synhet", field="OUT_DIR")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError("is a file; OUT_DIR must be a folder", file=out_dir)
    for name in ("synhet_3d.pkl", "synhet_2d.pkl", "class_names.txt"):  # checked before anything is written
        check_output_file(out_dir / name, overwrite=args.overwrite)
    written = save_synhet(args.out_dir, num_samples=args.num, seed=args.seed, num_frames=args.frames)
    for key, path in written.items():
        print(f"{key}: {path}")
    return 0


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def _persons(text: str) -> int:
    from hetskel.data.ntu import MAX_PERSONS

    n = _positive_int(text)
    if n > MAX_PERSONS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_PERSONS} persons (Kinect v2 tracks 6), got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    from hetskel.data.ntu import MAX_ARRAY_BYTES, MAX_FILE_BYTES

    p = argparse.ArgumentParser(prog="python -m hetskel.data", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Run `python -m hetskel.data COMMAND --help` for the options of a command.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("convert-ntu", help="raw NTU RGB+D .skeleton folder -> one PYSKL pickle",
                       description="Convert every *.skeleton file under SRC_DIR into a PYSKL annotation "
                                   "pickle (raw camera metres or colour pixels, layout ntu25, official "
                                   "splits and class names). Samples on the official missing-skeleton list "
                                   "and files with no body are skipped; unreadable files are reported as "
                                   "bad and make the exit code 1.")
    c.add_argument("src_dir", metavar="SRC_DIR", help="folder with .skeleton files (searched recursively)")
    c.add_argument("out", metavar="OUT.pkl", help="output PYSKL pickle")
    c.add_argument("--max-persons", type=_persons, default=2, help="most bodies kept per sample, by motion energy (2; at most 64); a clip keeps its own count up to it")
    c.add_argument("--max-file-mb", type=_positive_int, default=MAX_FILE_BYTES // 2**20,
                   help="larger .skeleton files are reported as bad, unread (%(default)s)")
    c.add_argument("--max-array-mb", type=_positive_int, default=MAX_ARRAY_BYTES // 2**20,
                   help="a file whose arrays (body IDs x frames, or the sample) would need more is "
                        "reported as bad before they are allocated (%(default)s)")
    c.add_argument("--workers", type=_positive_int, default=None, help="processes (default min(cpus, 8); 1 = inline)")
    c.add_argument("--dataset", choices=("auto", "ntu60", "ntu120"), default="auto",
                   help="which protocols/classes/missing list to use (auto: from the file names)")
    c.add_argument("--fields", choices=("xyz", "color2d"), default="xyz",
                   help="xyz: 3D camera metres; color2d: colour-image pixels + tracking-state scores")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.add_argument("--missing-list", metavar="FILE", default=None,
                   help="list of sample names to skip (default: the official list of the dataset)")
    c.add_argument("--max-report-lines", type=_positive_int, default=50, help="skipped/bad entries printed per kind")
    c.add_argument("--overwrite", action="store_true", help="replace an existing OUT.pkl (never one of the inputs)")
    c.set_defaults(func=_convert_ntu)

    i = sub.add_parser("info", help="summarise a PYSKL pickle (loaded safely: plain data only)",
                       description="Print samples, classes, splits, layout and frame statistics of a PYSKL "
                                   "annotation pickle. The file is read with a restricted unpickler, so a "
                                   "malicious pickle is refused, never executed.")
    i.add_argument("file", metavar="FILE.pkl")
    i.set_defaults(func=_info)

    s = sub.add_parser("synth", help="write the synthetic paired 3D/2D dataset (SynHet)",
                       description="Write OUT_DIR/synhet_3d.pkl and OUT_DIR/synhet_2d.pkl (paired by "
                                   "frame_dir) with the SynHet generator.")
    s.add_argument("out_dir", metavar="OUT_DIR")
    s.add_argument("--num", type=_positive_int, required=True, help="number of samples")
    s.add_argument("--seed", type=int, required=True, help="random seed")
    s.add_argument("--frames", type=_positive_int, default=64, help="frames per sample (64)")
    s.add_argument("--overwrite", action="store_true", help="replace existing synhet_*.pkl / class_names.txt")
    s.set_defaults(func=_synth)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from hetskel.io import error_message, quiet_broken_pipe

    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe (`... | head`) shows here, not at the interpreter's exit
        return code
    except BrokenPipeError as e:
        quiet_broken_pipe()
        print(f"error: {error_message(e)}", file=sys.stderr)
        return 2
    except (*USER_ERRORS, OSError) as e:
        # one short escaped line, no traceback: problems with the user's files, paths or disk (full,
        # read-only); the atomic writes have removed their temporaries
        print(f"error: {error_message(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
