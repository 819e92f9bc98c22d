from hetskel.benchmark.core import main

if __name__ == "__main__":
    raise SystemExit(main())
