"""Running the bridge as a service: configuration, assembly of all parts, private broker."""
