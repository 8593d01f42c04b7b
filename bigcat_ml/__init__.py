"""bigcat_ml: Open Images boxes -> Spark -> Petastorm chips -> Keras classifiers, tracked in MLflow. Runnable steps live here; the library in the subpackages."""
