"""The reference models every method works on: the generator, the lamp meter, and the hook API."""
