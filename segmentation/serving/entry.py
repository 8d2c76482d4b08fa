"""The pyfunc's code file (MLflow "models from code"): MLflow runs it to get the model object."""

from mlflow.models import set_model

from segmentation.serving.pyfunc import SegmentModel

set_model(SegmentModel())
