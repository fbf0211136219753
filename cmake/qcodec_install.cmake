include(CMakePackageConfigHelpers)

install(DIRECTORY include/qcodec DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS qcodec EXPORT qcodecTargets)
install(EXPORT qcodecTargets NAMESPACE qcodec:: DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/qcodec)

configure_package_config_file(cmake/qcodecConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/qcodecConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/qcodec)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/qcodecConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/qcodecConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/qcodecConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/qcodec)
