"""Model kinds (XGBoost, logistic regression), their portable files and their MLflow Model form."""
