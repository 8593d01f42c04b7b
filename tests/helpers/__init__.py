"""Code the tests share: fixtures' builders, fault injection, a standalone Spark cluster."""
