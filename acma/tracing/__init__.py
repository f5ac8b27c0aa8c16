"""Page-access traces of real programs: recorded under qemu-user with acma's TCG plugin."""
