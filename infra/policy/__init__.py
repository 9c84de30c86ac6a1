"""The stack's policy pack: ``pulumi preview --policy-pack infra/policy``.

The rules are in ``rules``; ``__main__`` only hands them to ``PolicyPack``.
"""
