"""Networks of Anycost Editor."""
from anycost.models.channels import TRAINED_RATIOS, resolve_channels, uniform_channels
from anycost.models.config import ARCHITECTURES, GeneratorConfig, architecture
from anycost.models.creps import CREPS_ARCHITECTURES, CrepsConfig, CrepsGenerator, creps_architecture
from anycost.models.encoder import Encoder, EncoderConfig
from anycost.models.generator import Generator

__all__ = ["ARCHITECTURES", "CREPS_ARCHITECTURES", "CrepsConfig", "CrepsGenerator", "creps_architecture", "Encoder",
           "EncoderConfig", "Generator", "GeneratorConfig", "TRAINED_RATIOS", "architecture",
           "resolve_channels", "uniform_channels"]
