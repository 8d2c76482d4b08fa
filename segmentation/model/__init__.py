"""The model as stored: the versioned bundle folder (`store`) and the MLflow registry with its champion (`registry`)."""
