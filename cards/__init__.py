"""Platform-neutral cards, their renderers, and the sales playbook."""
