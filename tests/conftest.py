import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

# pytest's own `pytester` fixture, for the pytest plugin's tests (tests/test_pytest_plugin.py)
pytest_plugins = ["pytester"]

# The sharding doctor's programs run on 8 simulated CPU devices, in this process as the other
# trace tests do (JAX reads this when its CPU backend starts; a mesh never changes where arrays
# without a sharding live, so the single-device tests are unaffected).
import os  # noqa: E402

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")
