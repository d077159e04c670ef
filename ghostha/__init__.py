"""ghostha: a highly available Ghost blog on AWS ECS, from the command line."""

__version__ = "0.1.0"
