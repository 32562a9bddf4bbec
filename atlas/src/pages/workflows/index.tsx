export { WorkflowsPage } from './list.js';
export { WorkflowPage } from './detail.js';
import './workflows.css';
