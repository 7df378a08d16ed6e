# Runs `gradc grad MODEL --inputs DATA.inputs.safetensors --params
# DATA.params.safetensors -o OUT [--wrt WRT]`, then
# `compare_reference --file OUT DATA.expected.safetensors`. Used by the
# reference.cli_grad test (cmake -P).
file(REMOVE ${OUT})
set(wrt_args)
if(WRT)
  set(wrt_args --wrt ${WRT})
endif()
execute_process(COMMAND ${GRADC} grad ${MODEL} --inputs ${DATA}.inputs.safetensors
                        --params ${DATA}.params.safetensors -o ${OUT} ${wrt_args}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gradc grad failed with status ${rc}")
endif()
execute_process(COMMAND ${COMPARE} --file ${OUT} ${DATA}.expected.safetensors RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the output of gradc grad disagrees with the reference (status ${rc})")
endif()
