"""HTTP routes of the service, one module per resource; ``service.app`` mounts them."""
