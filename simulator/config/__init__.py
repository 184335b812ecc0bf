from simulator.config.loader import config_hash, load_arch
from simulator.config.schema import ArchConfig

__all__ = ["ArchConfig", "config_hash", "load_arch"]
