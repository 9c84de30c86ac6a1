"""The Pulumi program: storage, the Batch account and its pool on Azure."""
