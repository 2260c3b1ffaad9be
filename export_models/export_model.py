"""Run by path from the repo root, as in OpenVINO Model Server's demos:

    python export_models/export_model.py rerank --source_model BAAI/bge-reranker-large --weight-format int8 \
        --config_file_path models/config.json --model_repository_path models

Same command as the `ovtext-export` console script (export_models/cli.py).
"""

import sys
from pathlib import Path

if not __package__:
    # Run as a script: Python put export_models/ first on sys.path, where its modules would
    # shadow top-level names; the package lives one folder up.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from export_models.cli import main

if __name__ == "__main__":
    main()
