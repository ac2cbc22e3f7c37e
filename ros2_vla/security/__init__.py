"""SROS2: a keystore for the graph (CA, an enclave per node, governance and permissions), no ROS here."""
