"""tcc.runtime"""
