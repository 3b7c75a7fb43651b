"""HTTP routes, one blueprint per concern; handlers only call the pipeline in order."""
