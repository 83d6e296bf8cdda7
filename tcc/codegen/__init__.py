"""tcc.codegen"""
