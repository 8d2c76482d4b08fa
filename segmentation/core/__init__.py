"""The ground floor: typed config, named errors, logging and the tables' column names. Imports nothing of the product."""
