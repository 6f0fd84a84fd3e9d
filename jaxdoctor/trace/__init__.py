"""The dynamic pass: `jaxdoctor trace`. Nothing here is imported by `jaxdoctor lint`."""
