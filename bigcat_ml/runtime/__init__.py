"""Runtime: the one SparkSession factory and the Java it runs on."""
