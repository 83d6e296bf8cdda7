"""tcc.ir"""
