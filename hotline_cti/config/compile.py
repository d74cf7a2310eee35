"""A loaded config compiled into the routing table a controller serves.

The routing core (:func:`hotline_cti.core.table.compile_config`) is pure; the data it is given
from outside the config file — the mobile prefixes of the region's cities, read from the
``phonenumbers`` package — is gathered here, once per load, and passed in as a plain dict.
"""

from __future__ import annotations

from hotline_cti.config.mobile import mobile_city_prefixes
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.table import RoutingTable, compile_config


def compile_table(cfg: MergerConfig) -> RoutingTable:
    """The routing table for ``cfg``, with its mobile prefixes."""
    return compile_config(cfg, mobile_city=mobile_city_prefixes(cfg))
