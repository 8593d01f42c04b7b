"""Runtime: the one SparkSession factory, the Java it runs on, TensorFlow's start-up logs, the console and progress lines."""
