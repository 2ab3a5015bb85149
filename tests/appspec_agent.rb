# The CodeDeploy agent's own verdict on appspec files, for tests/appspec_agent.rs.
#
#   ruby tests/appspec_agent.rb AGENT_SRC BUNDLE_DIR APPSPEC...
#
# For each APPSPEC, as the agent (AGENT_SRC/lib) would on an instance whose
# archive is BUNDLE_DIR:
#   1. ApplicationSpecification.parse: YAML.load (Psych 4 on Ruby >= 3.1, so
#      no aliases and no dates) and every check of the parser classes;
#   2. the Installer's planning of the `files` and `permissions` sections
#      (the step that refuses two sources for one destination), with every
#      destination moved under an empty directory so that this machine's own
#      files cannot decide the verdict;
#   3. that every copy source and every hook script is in the archive (the
#      agent fails at Install or at the hook otherwise).
# Prints one JSON line per file: {"file": ..., "ok": true|false, "error": ...}.
# Scripts without an exec bit are not an error: the agent chmods +x first.

agent_src, bundle, *specs = ARGV
abort "usage: ruby appspec_agent.rb AGENT_SRC BUNDLE_DIR APPSPEC..." if bundle.nil?
require_relative 'agent_env'
require 'tmpdir'
load_agent(agent_src)
require 'instance_agent/plugins/codedeploy/application_specification/acl_info'
require 'instance_agent/plugins/codedeploy/application_specification/ace_info'
require 'instance_agent/plugins/codedeploy/application_specification/context_info'
require 'instance_agent/plugins/codedeploy/application_specification/range_info'

abort "Ruby #{RUBY_VERSION} has Psych #{Psych::VERSION}; the corpus is judged as current AMIs do (Ruby >= 3.1, Psych 4): run scripts/setup-agent" if Psych::VERSION.to_i < 4

# An instance's agent supports the os it runs on; the appspec names the os of
# the instances it is for, so each file is judged by an agent of that os.
module OsOfTheInstance
  def self.supported_oses
    %w[linux windows]
  end
end
InstanceAgent::Platform.util = OsOfTheInstance

Spec = InstanceAgent::Plugins::CodeDeployPlugin::ApplicationSpecification
Plan = Struct.new(:files, :permissions, :file_exists_behavior)

def judge(text, bundle)
  spec = Spec::ApplicationSpecification.parse(text)
  Dir.mktmpdir do |root|
    files = spec.files.map { |f| Spec::FileInfo.new(f.source, File.join(root, f.destination)) }
    permissions = spec.permissions.map do |p|
      p.dup.tap { |q| q.instance_variable_set(:@object, File.join(root, p.object)) }
    end
    installer = InstanceAgent::Plugins::CodeDeployPlugin::Installer.new(
      deployment_archive_dir: bundle, deployment_instructions_dir: root, file_exists_behavior: 'DISALLOW'
    )
    plan = installer.send(:generate_instructions, Plan.new(files, permissions, spec.file_exists_behavior))
    plan.command_array.each do |cmd|
      next unless cmd.is_a?(InstanceAgent::Plugins::CodeDeployPlugin::CopyCommand)
      next if File.exist?(cmd.source) || File.symlink?(cmd.source)

      raise "Install would fail: #{cmd.source} is not in the archive"
    end
  end
  spec.hooks.each do |hook, scripts|
    scripts.each do |script|
      path = File.join(bundle, script.location)
      raise "#{hook} would fail: Script does not exist at specified location: #{script.location}" unless File.exist?(path)
      # The agent runs whatever is there; a directory fails with EACCES.
      raise "#{hook} would fail: #{script.location} is a directory" if File.directory?(path)
    end
  end
  nil
end

specs.each do |file|
  error = begin
    judge(File.read(file), bundle)
  rescue Exception => e # rubocop:disable Lint/RescueException -- the agent fails the event on any of them
    "#{e.class}: #{e.message}"
  end
  puts JSON.generate({ 'file' => file, 'ok' => error.nil?, 'error' => error })
end
