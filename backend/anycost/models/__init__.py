"""Networks of Anycost Editor."""
from .channels import TRAINED_RATIOS, resolve_channels, uniform_channels
from .config import ARCHITECTURES, GeneratorConfig, architecture
from .creps import CREPS_ARCHITECTURES, CrepsConfig, CrepsGenerator, creps_architecture
from .encoder import Encoder, EncoderConfig
from .generator import Generator

__all__ = ["ARCHITECTURES", "CREPS_ARCHITECTURES", "CrepsConfig", "CrepsGenerator", "creps_architecture", "Encoder",
           "EncoderConfig", "Generator", "GeneratorConfig", "TRAINED_RATIOS", "architecture",
           "resolve_channels", "uniform_channels"]
