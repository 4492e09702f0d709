"""SRT (Scalable Recommendation Transformer) for RecBole.

Importing the package makes 'SRT' resolvable by RecBole's own `get_model` as well as by ours, and installs the
numpy aliases RecBole's metrics need (normally installed only when a Config is built, never when one is loaded) and
hides pandas 2's warnings about what pandas 3 will change in RecBole's dataset code.
"""

from recbole_srt.compat import install_numpy_aliases, quiet_pandas_3_warnings
from recbole_srt.registry import register_models

install_numpy_aliases()
quiet_pandas_3_warnings()
register_models()

from recbole_srt.config import Config  # noqa: E402
from recbole_srt.model.srt import SRT  # noqa: E402
from recbole_srt.quick_start import load_data_and_model, run_recbole  # noqa: E402
from recbole_srt.trainer import SRTTrainer  # noqa: E402

__version__ = "0.1.0"
__all__ = ["SRT", "Config", "SRTTrainer", "run_recbole", "load_data_and_model"]
