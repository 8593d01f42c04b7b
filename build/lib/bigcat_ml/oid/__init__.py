"""Open Images (OID V5/V6): file schemas, readers, the class hierarchy, class selection."""
