"""What infra, the runner, the local stack and the emulator agree on, and nothing else.

``outputs``: the stack outputs the Pulumi program exports and the runner reads.
``spec``: the storage containers and the Batch pool, described once as plain data.
``rest``: that pool rendered as the Batch REST API's create-pool body (the local stack's).
``local``: the local stack's development accounts, keys and pool identity.

It imports no other code of this project, so any part may import it and none need
import another part.
"""
