"""The speed–quality benchmark (its code and documentation: aid.bench.run; also `aid bench`).

    python benchmarks/speed_quality.py --out runs/sq [--resume] [--quick] [--deft PATH] [--aid PATH]
"""
from aid.bench.run import main

if __name__ == "__main__":
    main()
