import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

# pytest's own `pytester` fixture, for the pytest plugin's tests (tests/test_pytest_plugin.py)
pytest_plugins = ["pytester"]
