# test guest recipe
