"""Runtime: the one SparkSession factory, the Java it runs on, and TensorFlow's start-up logs."""
