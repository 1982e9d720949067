"""The speed–quality benchmark (its code and documentation: aid.speed_quality; also `aid bench`).

    python benchmarks/speed_quality.py --out runs/sq [--resume] [--quick] [--deft PATH] [--aid PATH]
"""
from aid.speed_quality import main

if __name__ == "__main__":
    main()
