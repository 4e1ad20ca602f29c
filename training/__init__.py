"""Training sets, fitting, MLflow tracking and registry, the promotion gate."""
