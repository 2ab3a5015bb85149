# Shared by the test drivers that run the CodeDeploy agent's own Ruby code
# (appspec_agent.rb, bundle_agent.rb): puts AGENT_SRC/lib on the load path
# and replaces the agent's log (ProcessManager::Log, on the logging gem) with
# a sink; nothing the tests judge is logged.

require 'yaml'
require 'json'
require 'set'
require 'fileutils'

def load_agent(agent_src)
  $LOAD_PATH.unshift(File.join(agent_src, 'lib'))
  require 'instance_agent/platform'
  require 'instance_agent/plugins/codedeploy/application_specification/application_specification'
  require 'instance_agent/plugins/codedeploy/installer'
end

module InstanceAgent
  module Log
    SEVERITIES = %w[debug info warn error fatal].freeze
    SEVERITIES.each { |s| define_singleton_method(s) { |*| } }
  end
end
