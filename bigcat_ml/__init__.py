"""bigcat_ml: Open Images boxes -> Spark -> Petastorm chips -> Keras classifiers, tracked in MLflow. Runnable steps live here; the library in the subpackages."""

from bigcat_ml.runtime import tf_logs

# Here, because every process that runs our code imports this package before TensorFlow:
# the driver, and Spark's Python workers when they unpickle a step's function.
tf_logs.install()
