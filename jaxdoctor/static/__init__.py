"""The static pass: `jaxdoctor lint`. Never imports or executes the code it checks."""
