"""The classes of the seed's four heads, shared by the labels, the model and decoding.

Kept apart from the Keras model so that encoding, decoding and `blogml data check nl2sql
--ceiling` run without importing Keras.
"""

NUM_CONNECTORS = 3  # cond_conn_op: 0 none, 1 and, 2 or
NOT_SELECTED = 6    # aggregation class of a column that is not selected (after the 6 aggs)
NOT_A_VALUE = 4     # operator class of a question token that is not in a condition value
LINK_SLOTS = 3      # columns one value mention can serve (PE、PB和PS都大于1: three conditions)
