# Manager containers (helper "containers"): seeds i and j.
mproc_add_example(manager_value_string)
mproc_add_example(manager_dict_list)
