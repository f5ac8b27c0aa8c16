"""The host side: a host with several guests, virtio-balloon, memory hotplug from user space,
and the policies that decide how guest memory follows demand (see docs/host.md)."""
