"""A local Azure Batch service that speaks the Batch REST API and runs tasks as processes."""
