"""Provisioning: from the city's catalogue of devices to their identities, secrets, the broker's
and the gateway's files, and ready-to-boot SD cards (``machimori provision``).

The catalogue (``catalogue.yaml``) holds what the city may show and back up anywhere: ids, kinds,
sites, coordinates, levels. Secrets live apart in a 0700 folder of 0600 files (``vault``), and
leave it only into the files a device or the broker reads.
"""
